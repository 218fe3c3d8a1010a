#!/usr/bin/env bash
# Generate Palaver's voice prompts and default music on hold.
#
#   prompts/text/<lang>.toml  --espeak-ng + sox-->  prompts/<lang>/{8000,16000}/<id>.wav
#   (synthesised here with sox)                -->  prompts/moh/{8000,16000}/default.wav
#
# Deterministic and re-runnable: the same texts and tool versions give the same
# bytes (sox -R fixes its random seeds, -D turns dither off), and files whose
# id no longer exists in the texts are removed. Installs espeak-ng, sox and
# python3 (used only to read TOML) with apt-get when they are missing.
#
# Usage: scripts/gen-prompts.sh [lang...]     (default: every prompts/text/*.toml)
#        scripts/gen-prompts.sh --moh-only
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROMPTS="$ROOT/prompts"
RATES=(8000 16000)
# Speech peaks at -3 dBFS at most, and is levelled to an active speech level
# of -20 dBFS. Music sits lower (RMS about -22 dBFS, peak at most
# -6 dBFS) so that it never sounds louder than the prompts around it.
SPEECH_PEAK_DB=-3
SPEECH_LEVEL_DB=-20 # active speech level, see speech_gains
MOH_RMS_DB=-22
MOH_PEAK_DB=-6

need_tools() {
    local missing=()
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v sox >/dev/null || missing+=(sox)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}" >&2
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    python3 -c 'import tomllib' 2>/dev/null || {
        echo "python3 >= 3.11 (tomllib) is required to read prompts/text/*.toml" >&2
        exit 1
    }
}

# Print "key<TAB>value" lines for one language: voice settings first
# (voice, speed, number_speed, pitch), then one "<file id><TAB><text>" per
# WAV to make.
# The file-id rules are mirrored by crates/prompts (number.rs); its tests
# fail if the two disagree.
list_items() {
    python3 - "$1" <<'PY'
import sys, tomllib

with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)

def out(key, text):
    text = str(text)
    if "\t" in text or "\n" in text:
        sys.exit(f"{sys.argv[1]}: {key}: tabs and newlines are not allowed")
    print(f"{key}\t{text}")

voice = doc["voice"]
out("@voice", voice["espeak"])
out("@speed", voice.get("speed", 150))
out("@pitch", voice.get("pitch", 50))
for pid, text in doc["prompts"].items():
    out(pid, text)
out("@speed", voice.get("number_speed", voice.get("speed", 150)))
num = doc["numbers"]
if "connector" in num:
    out("num_and", num["connector"])
out("num_1000", num["thousand"])
for n, text in num["cardinal"].items():
    out(f"num_{int(n)}", text)
for h, text in num["hundreds"].items():
    out(f"num_{int(h)}00", text)
for h, text in num.get("hundreds_joined", {}).items():
    out(f"num_{int(h)}00_joined", text)
for h, text in num.get("hundreds_elided", {}).items():
    out(f"num_{int(h)}00_elided", text)
for r, text in num.get("before_noun", {}).items():
    out(f"num_{int(r)}_noun", text)
PY
}

# Speech, first pass: cut rumble, trim leading/trailing silence, 5 ms fades
# so the cut never clicks, a gentle compressor (about 1.7:1 above -30 dBFS,
# 5 ms look-ahead) that evens out syllables, resample, peak at -3 dBFS.
# The leading -6 dB is headroom: espeak-ng output peaks close to full scale
# and the filters would otherwise clip it.
render_speech() { # raw.wav rate out.wav
    sox -R -D "$1" -b 16 -e signed-integer -c 1 "$3" \
        gain -6 highpass 100 \
        silence 1 0.01 -50d reverse silence 1 0.01 -50d fade t 0.005 \
        reverse fade t 0.005 \
        compand 0.005,0.1 6:-70,-70,-30,-30,0,-12 0 -90 0.005 \
        rate -v "$2" \
        gain -n "$SPEECH_PEAK_DB"
}

# Second pass: print "<file> <gain dB>" so that every file's active speech
# level (RMS over its 20 ms frames above -40 dBFS, a simple form of ITU-T
# P.56) comes down to SPEECH_LEVEL_DB. Files already below it keep their -3
# dBFS peak: raising them would clip. Peak-only normalisation left a 10 dB
# spread between short plosive words ("acht") and long sentences.
speech_gains() { # files...
    python3 - "$SPEECH_LEVEL_DB" "$@" <<'PY'
import math, sys, wave
from array import array

target = float(sys.argv[1])
for path in sys.argv[2:]:
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        frame = w.getframerate() // 50
        pcm = array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        pcm.byteswap()
    energies = []
    for i in range(0, len(pcm) - frame + 1, frame):
        e = sum(x * x for x in pcm[i : i + frame]) / frame / 32768.0**2
        if e > 1e-4:  # -40 dBFS
            energies.append(e)
    level = 10 * math.log10(sum(energies) / len(energies)) if energies else target
    print(path, f"{min(0.0, target - level):.2f}")
PY
}

gen_language() { # lang
    local lang=$1 toml="$PROMPTS/text/$1.toml"
    [[ -f $toml ]] || { echo "no such language file: $toml" >&2; exit 1; }
    local work="$TMP/$lang" voice="" speed="" pitch="" key text count=0 speeds=()
    mkdir -p "$work/raw"
    for rate in "${RATES[@]}"; do mkdir -p "$work/first/$rate" "$work/$rate"; done
    while IFS=$'\t' read -r key text; do
        case $key in
        @voice) voice=$text; continue ;;
        @speed) speed=$text; speeds+=("$text"); continue ;;
        @pitch) pitch=$text; continue ;;
        esac
        printf '%s\n' "$text" | espeak-ng -v "$voice" -s "$speed" -p "$pitch" --stdin -w "$work/raw/$key.wav"
        for rate in "${RATES[@]}"; do
            render_speech "$work/raw/$key.wav" "$rate" "$work/first/$rate/$key.wav"
        done
        count=$((count + 1))
    done < <(list_items "$toml")
    # Level, then a short fixed pad so that prompts chained back to back
    # (the number words) keep a small word gap.
    local file gain
    while read -r file gain; do
        sox -R -D "$file" "$work/${file#"$work/first/"}" gain "$gain" pad 0.01 0.03
    done < <(speech_gains "$work"/first/*/*.wav)
    # Swap in the fresh set: this also drops files of ids that were removed.
    for rate in "${RATES[@]}"; do
        rm -rf "${PROMPTS:?}/$lang/$rate"
        mkdir -p "$PROMPTS/$lang"
        mv "$work/$rate" "$PROMPTS/$lang/$rate"
    done
    echo "$lang: $count files (voice $voice, ${speeds[*]} wpm)"
}

# ---------------------------------------------------------------- music on hold
#
# Eight bars of 3.75 s (64 bpm) = exactly 30 s, in C major: C Am F G C Am Dm G.
# The last chord (G) leads back into the first (C), so the loop point is an
# ordinary bar change. Layers: a soft sine pad with 0.5 s cross-fades between
# chords, a quiet bass root, and a plucked arpeggio in eighth notes; then a
# light reverb. Everything that rings past 30 s (pad fade, string decay,
# reverb tail) is folded back onto the start, so the file loops without a gap
# or a click. Pitches are semitones from A4 = 440 Hz (sox's "%n" notation).

MOH_SR=48000
BAR=3.75
STEP=0.46875 # an eighth note
XF=0.5       # pad cross-fade

#         pad voicing     bass  arpeggio tones (low to high)
CHORDS=(
    "-9 -5 -2           -21   3 7 10 15 19"  # C   C4 E4 G4 / C3 / C5 E5 G5 C6 E6
    "-9 -5 0            -24   0 3 7 12 15"   # Am  C4 E4 A4 / A2 / A4 C5 E5 A5 C6
    "-9 -4 0            -28   -4 0 3 8 12"   # F   C4 F4 A4 / F2 / F4 A4 C5 F5 A5
    "-10 -7 -2          -26   -2 2 5 10 14"  # G   B3 D4 G4 / G2 / G4 B4 D5 G5 B5
    "-9 -5 -2           -21   3 7 10 15 19"  # C
    "-9 -5 0            -24   0 3 7 12 15"   # Am
    "-12 -7 -4          -19   -7 -4 0 5 8"   # Dm  A3 D4 F4 / D3 / D4 F4 A4 D5 F5
    "-10 -7 -2          -26   -2 2 5 10 14"  # G
)
ARP_PATTERN=(0 1 2 3 4 3 2 1)

gen_moh() {
    local work="$TMP/moh" bar=0 parts=()
    mkdir -p "$work"
    local synth=(sox -R -D -n -r "$MOH_SR" -b 16 -c 1)
    for chord in "${CHORDS[@]}"; do
        read -r p1 p2 p3 bass a0 a1 a2 a3 a4 <<<"$chord"
        local arp=("$a0" "$a1" "$a2" "$a3" "$a4")
        local start
        start=$(awk -v b="$bar" -v l="$BAR" 'BEGIN { printf "%.5f", b * l }')
        local len
        len=$(awk -v l="$BAR" -v x="$XF" 'BEGIN { printf "%.5f", l + x }')
        # Pad: three sines mixed to mono, faded in and out over the cross-fade.
        "${synth[@]}" "$work/pad$bar.wav" synth "$len" sine "%$p1" sine "%$p2" sine "%$p3" \
            channels 1 vol 0.10 fade h "$XF" "$len" "$XF" pad "$start"
        parts+=("$work/pad$bar.wav")
        "${synth[@]}" "$work/bass$bar.wav" synth "$len" sine "%$bass" \
            vol 0.12 fade h "$XF" "$len" "$XF" pad "$start"
        parts+=("$work/bass$bar.wav")
        local step=0
        for idx in "${ARP_PATTERN[@]}"; do
            local at
            at=$(awk -v s="$start" -v i="$step" -v st="$STEP" 'BEGIN { printf "%.5f", s + i * st }')
            # Accent the first note of each bar a little; the rest stay soft.
            local v=0.13
            ((step == 0)) && v=0.17
            "${synth[@]}" "$work/arp${bar}_$step.wav" synth 1.6 pluck "%${arp[$idx]}" \
                vol "$v" fade q 0.004 1.6 1.3 pad "$at"
            parts+=("$work/arp${bar}_$step.wav")
            step=$((step + 1))
        done
        bar=$((bar + 1))
    done
    local loop_samples=$((MOH_SR * 30))
    local mix_inputs=()
    for p in "${parts[@]}"; do mix_inputs+=(-v 1 "$p"); done
    sox -R -D -m "${mix_inputs[@]}" -b 32 -e floating-point "$work/dry.wav"
    sox -R -D "$work/dry.wav" -b 32 -e floating-point "$work/wet.wav" \
        lowpass 3500 reverb 45 50 70 100 10 pad 0 3
    # Fold everything past the loop length back onto the start.
    sox -R -D "$work/wet.wav" "$work/head.wav" trim 0 "${loop_samples}s"
    sox -R -D "$work/wet.wav" "$work/tail.wav" trim "${loop_samples}s"
    sox -R -D -m -v 1 "$work/head.wav" -v 1 "$work/tail.wav" "$work/folded.wav" trim 0 "${loop_samples}s"
    # Resample three copies back to back and keep the middle one, so the
    # resampler's filter sees the loop's own neighbours at both edges.
    for rate in "${RATES[@]}"; do
        local n=$((rate * 30))
        mkdir -p "$work/$rate"
        sox -R -D "$work/folded.wav" "$work/folded.wav" "$work/folded.wav" -b 32 -e floating-point "$work/x3_$rate.wav" \
            rate -v "$rate" trim "${n}s" "${n}s"
    done
    # One gain for both rates (measured on the wideband one) keeps them alike:
    # the RMS target, unless that would push the peak past its ceiling.
    local stats gain
    stats=$(sox "$work/x3_16000.wav" -n stats 2>&1)
    gain=$(awk -v r="$MOH_RMS_DB" -v p="$MOH_PEAK_DB" '
        /^Pk lev dB/ { pk = $4 } /^RMS lev dB/ { rms = $4 }
        END { g = r - rms; if (pk + g > p) g = p - pk; printf "%.3f", g }' <<<"$stats")
    for rate in "${RATES[@]}"; do
        sox -R -D "$work/x3_$rate.wav" -b 16 -e signed-integer -c 1 "$work/$rate/default.wav" gain "$gain"
        rm -rf "${PROMPTS:?}/moh/$rate"
        mkdir -p "$PROMPTS/moh"
        mv "$work/$rate" "$PROMPTS/moh/$rate"
    done
    echo "moh: default.wav, 30 s loop, gain $gain dB"
}

need_tools
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [[ ${1:-} == --moh-only ]]; then
    gen_moh
    exit 0
fi
if (($#)); then
    langs=("$@")
else
    langs=()
    for f in "$PROMPTS"/text/*.toml; do
        f=${f##*/}
        langs+=("${f%.toml}")
    done
fi
for lang in "${langs[@]}"; do gen_language "$lang"; done
(($#)) || gen_moh
echo "total: $(du -sh "$PROMPTS" | cut -f1) in $PROMPTS"
