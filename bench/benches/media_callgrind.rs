//! One 1000-participant tick under callgrind. Build with
//! `cargo bench -p palaver-bench --bench media_callgrind --no-run`, then run
//! the binary under
//! `valgrind --tool=callgrind --toggle-collect='*measured_ticks*' BIN`:
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
    let opus = std::env::args().any(|a| a == "opus");
    let codec = if opus { Codec::Opus } else { Codec::Pcmu };
    let rate = std::env::args().find_map(|a| a.parse::<u32>().ok()).unwrap_or(if opus { 48000 } else { 8000 });
    let mut room = BenchRoom::with_rate(codec, 1000, rate);
    measured_ticks(&mut room, 10);
    println!("{} ticks of a 1000-participant {} room, {} packets sent", 10, codec.name(), room.sent);
}
