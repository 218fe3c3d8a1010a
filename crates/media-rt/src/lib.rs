//! The media runtime: worker threads, RTP sockets and 20 ms ticks that drive the media core.
