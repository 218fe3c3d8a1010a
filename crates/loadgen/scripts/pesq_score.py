#!/usr/bin/env python3
"""Scores the quality scenario with ITU-T P.862 narrow-band PESQ.

    pesq_score.py DIR    (DIR holds clean.wav, codec.wav, received.wav from
                          `loadgen --mode quality --record-dir DIR`)

Prints JSON: the codec-only score, the through-the-room score (both against
the clean speech) and their difference. Needs `pip install pesq numpy`.
"""

import json
import sys
import wave

import numpy as np
from pesq import pesq


def read(path):
    with wave.open(path, "rb") as w:
        if w.getframerate() != 8000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: need 8 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    clean = read(f"{d}/clean.wav")
    codec = read(f"{d}/codec.wav")
    room = read(f"{d}/received.wav")
    n = min(len(clean), len(codec), len(room))
    clean, codec, room = clean[:n], codec[:n], room[:n]
    s_codec = pesq(8000, clean, codec, "nb")
    s_room = pesq(8000, clean, room, "nb")
    print(json.dumps({"codec_only": round(s_codec, 3), "room": round(s_room, 3),
                      "difference": round(s_room - s_codec, 3)}))


if __name__ == "__main__":
    main()
