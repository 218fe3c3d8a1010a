//! Cost of the SDP work done per call setup: parsing a typical offer
//! (Linphone, audio + video), writing a description, answering an offer,
//! and the offerer's check of an answer. Run: `cargo bench -p palaver-sdp`.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palaver_sdp::{Direction, LocalCapabilities, Origin, Session, accept_answer, answer, offer};

const LINPHONE: &str = "v=0\r\no=alice 2413 3045 IN IP4 192.0.2.20\r\ns=Talk\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\na=record:off\r\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\na=fmtp:97 vbr=on\r\na=rtpmap:98 speex/8000\r\na=fmtp:98 vbr=on\r\n\
a=fmtp:18 annexb=yes\r\na=rtpmap:101 telephone-event/48000\r\na=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\na=rtcp-fb:* trr-int 1000\r\na=rtcp-fb:* ccm tmmbr\r\n\
m=video 9078 RTP/AVP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n\
a=fmtp:97 profile-level-id=42801F\r\na=rtcp-fb:* trr-int 1000\r\na=rtcp-fb:* ccm tmmbr\r\n\
a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\n";

fn bench(c: &mut Criterion) {
    let local: SocketAddr = ([127, 0, 0, 1], 4000).into();
    let origin = Origin::new(1, 1, local.ip());
    let caps = LocalCapabilities::default();
    let parsed = Session::parse(LINPHONE.as_bytes()).expect("sample parses");

    let mut group = c.benchmark_group("sdp");
    group.throughput(Throughput::Bytes(LINPHONE.len() as u64));
    group.bench_function("parse linphone offer", |b| {
        b.iter(|| Session::parse(black_box(LINPHONE.as_bytes())))
    });
    group.bench_function("write linphone offer", |b| {
        b.iter(|| black_box(&parsed).to_string())
    });
    group.finish();

    c.bench_function("sdp/answer linphone offer", |b| {
        b.iter(|| {
            answer(
                black_box(&parsed),
                &caps,
                &origin,
                local,
                Direction::SendRecv,
            )
        })
    });
    let ours = offer(&caps, &origin, local, Direction::SendRecv);
    let theirs = answer(&ours, &caps, &origin, local, Direction::SendRecv)
        .expect("our own offer is acceptable")
        .session;
    c.bench_function("sdp/accept answer", |b| {
        b.iter(|| accept_answer(black_box(&ours), black_box(&theirs)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
