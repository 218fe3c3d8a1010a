//! One 1000-participant tick under callgrind. Build with
//! `cargo bench -p palaver-bench --bench media_callgrind --no-run`, then run
//! the binary under
//! `valgrind --tool=callgrind --toggle-collect='*measured_ticks*' BIN [opus|g722] [RATE]`:
//! only `measured_ticks` (10 ticks of a warmed-up room) is counted; divide
//! the instruction count by 10. Without valgrind it just runs once.

mod media_support;

use media_support::BenchRoom;
use palaver_media::codec::Codec;

#[inline(never)]
fn measured_ticks(room: &mut BenchRoom, ticks: usize) {
    for _ in 0..ticks {
        room.step();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument picks the codec.
    let args: Vec<String> = std::env::args().collect();
    let codec = if args.iter().any(|a| a == "opus") {
        Codec::Opus
    } else if args.iter().any(|a| a == "g722") {
        Codec::G722
    } else {
        Codec::Pcmu
    };
    let natural = match codec {
        Codec::Opus => 48000,
        Codec::G722 => 16000,
        _ => 8000,
    };
    let rate = args
        .iter()
        .find_map(|a| a.parse::<u32>().ok())
        .unwrap_or(natural);
    let mut room = BenchRoom::with_rate(codec, 1000, rate);
    measured_ticks(&mut room, 10);
    println!(
        "{} ticks of a 1000-participant {} room, {} packets sent",
        10,
        codec.name(),
        room.sent
    );
}
