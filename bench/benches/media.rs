//! Media engine benchmarks: one room tick at 10/100/1000 participants for
//! G.711 and Opus (5 % talkers, decode of all inputs and every encode
//! included), the jitter buffer, codecs, resampling and the mixer alone.
//! Figures are recorded in `docs/benchmarks.md` ("Media engine").

mod media_support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use media_support::BenchRoom;
use palaver_media::codec::{AudioDecoder, AudioEncoder, ChunkResampler, Codec};
use palaver_media::jitter::{JitterBuffer, JitterConfig};
use palaver_media::mixer::{Mixer, SlotFlags};

fn tone(rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / f64::from(rate)).sin())
                as i16
        })
        .collect()
}

fn room_tick(c: &mut Criterion) {
    let mut g = c.benchmark_group("room_tick");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(4));
    for (codec, rate) in [
        (Codec::Pcmu, 8000),
        (Codec::Opus, 48000),
        (Codec::Opus, 16000),
        (Codec::G722, 16000),
    ] {
        for n in [10usize, 100, 1000] {
            let mut room = BenchRoom::with_rate(codec, n, rate);
            // Throughput in participants: criterion then reports time per
            // participant per tick as well.
            g.throughput(Throughput::Elements(n as u64));
            let label = format!("{}@{}k", codec.name(), rate / 1000);
            g.bench_function(BenchmarkId::new(label, n), |b| b.iter(|| room.step()));
        }
    }
    g.finish();
}

/// CPU time of the calling thread: on a shared 2-core machine this is the
/// cost of a tick on one core, without the time other processes held it.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id
    // is a constant the kernel supports.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn room_tick_cpu(c: &mut Criterion) {
    let mut g = c.benchmark_group("room_tick_cpu");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(6));
    for (codec, rate) in [
        (Codec::Pcmu, 8000),
        (Codec::Opus, 48000),
        (Codec::Opus, 16000),
        (Codec::G722, 16000),
    ] {
        let n = 1000;
        let mut room = BenchRoom::with_rate(codec, n, rate);
        g.throughput(Throughput::Elements(n as u64));
        let label = format!("{}@{}k", codec.name(), rate / 1000);
        g.bench_function(BenchmarkId::new(label, n), |b| {
            b.iter_custom(|iters| {
                let t0 = thread_cpu();
                for _ in 0..iters {
                    room.step();
                }
                thread_cpu() - t0
            })
        });
    }
    g.finish();
}

fn jitter_buffer(c: &mut Criterion) {
    let mut g = c.benchmark_group("jitter_buffer");
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::new(8000, Duration::from_millis(20), 960));
    let payload = [0x55u8; 160];
    let mut k = 0u64;
    g.bench_function("push_pop_160B", |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(20 * k);
            jb.push(now, k, (k * 160) as u32, &payload);
            black_box(jb.pop(now + Duration::from_millis(30)));
            k += 1;
        })
    });
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec_20ms");
    for (codec, rate) in [
        (Codec::Pcmu, 8000),
        (Codec::Pcma, 8000),
        (Codec::G722, 16000),
        (Codec::Opus, 48000),
        (Codec::Opus, 16000),
    ] {
        let n = rate as usize / 50;
        let pcm = tone(rate, n);
        let mut enc = AudioEncoder::new(codec, rate).unwrap();
        let mut dec = AudioDecoder::new(codec, rate).unwrap();
        let mut buf = vec![0u8; 1500];
        let mut out = vec![0i16; n];
        let label = format!("{}@{}k", codec.name(), rate / 1000);
        g.bench_function(BenchmarkId::new("encode", &label), |b| {
            b.iter(|| black_box(enc.encode(black_box(&pcm), &mut buf).unwrap()))
        });
        let len = enc.encode(&pcm, &mut buf).unwrap();
        let pkt = buf[..len].to_vec();
        g.bench_function(BenchmarkId::new("decode", &label), |b| {
            b.iter(|| black_box(dec.decode(black_box(&pkt), &mut out).unwrap()))
        });
    }
    for (from, to) in [
        (8000u32, 16000u32),
        (16000, 8000),
        (8000, 48000),
        (48000, 8000),
    ] {
        let n = from as usize / 50;
        let pcm = tone(from, n);
        let mut r = ChunkResampler::new(from, to, n).unwrap();
        let mut out = vec![0i16; r.out_frames()];
        g.bench_function(
            BenchmarkId::new("resample", format!("{}k->{}k", from / 1000, to / 1000)),
            |b| b.iter(|| r.process(black_box(&pcm), &mut out).unwrap()),
        );
    }
    g.finish();
}

fn mixer_only(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixer");
    for n in [10usize, 100, 1000] {
        let mut m = Mixer::new(160, 4);
        let pcm = tone(8000, 160);
        for i in 0..n {
            let s = m.add_slot();
            m.set_flags(
                s,
                SlotFlags {
                    speak: true,
                    hear: true,
                },
            );
            if i < n / 20 + 1 {
                m.input_mut(s).copy_from_slice(&pcm);
            }
        }
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("mix_8k", n), |b| b.iter(|| m.mix(None)));
    }
    g.finish();
}

criterion_group!(
    benches,
    room_tick,
    room_tick_cpu,
    jitter_buffer,
    codecs,
    mixer_only
);
criterion_main!(benches);
