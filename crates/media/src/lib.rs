//! Sans-IO media core: RTP/RTCP, jitter buffer, codecs, DTMF, tones, prompts, mixer, recorder.
