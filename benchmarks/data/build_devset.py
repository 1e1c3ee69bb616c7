"""Build the recorded-sample development set from the General MIDI soundfonts Debian ships.

Training figures measured on the built-in synthetic kicks say little about the job users
have (a folder of recorded one-shots), and no recorded set may be downloaded at run time.
Debian's soundfonts are recordings (and, for OPL-3, an FM chip) that anyone can rebuild,
so this script renders them with ``fluidsynth`` into sample-pack-like folders:

    OUT/kicks/train/<family>-<kit>/*.wav       every variant of every training kick
    OUT/kicks/heldout/<family>-<kit>/*.wav     kits of the held-out families
    OUT/kicks/train-300/, train-3000/          subsets of train (hard links): all kits, fewer variants
    OUT/tones/train/..., OUT/tones/heldout/... melodic GM programs 0-111 for paper-instruments
    OUT/manifest.json                          one row per file: family, kit, note, velocity, variant, split

Every drum kit (bank 128 preset) of every soundfont plays GM kick notes 35 and 36; kits
that reuse one kick sample are rendered once (the first in a fixed order keeps it). Each
kick then gets seeded variants, the way a sample pack varies one drum: velocity, tuning
(pitch bend), reverb and chorus send, pan, a low-pass filter and stereo width. The split
is by soundfont *family* (soundfonts built from the same samples), never by file, so
held-out kits are sounds the generator never heard. The output is deterministic for a
seed; an existing file is never rendered again.

    python benchmarks/data/build_devset.py [--out /work/devset] [--variants 72] [--jobs 2]

Needs ``fluidsynth`` and the soundfont packages (see ``APT_PACKAGES``); it never installs
them itself, and exits with code 2 and the ``apt-get`` line when they are missing.
"""

from __future__ import annotations

import argparse
import json
import math
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

from ssgan_core.audio import write_audio

APT_PACKAGES = (
    "fluidsynth",
    "fluid-soundfont-gm",
    "fluid-soundfont-gs",
    "fluidr3mono-gm-soundfont",
    "musescore-general-soundfont-small",
    "timgm6mb-soundfont",
    "opl3-soundfont",
    "csound-soundfont",
)
"""Debian packages the set is built from (never hydrogen-drumkits, hydrogen-data or
avldrums.lv2-soundfont: outside checks use recordings of that kind)."""
SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))

FAMILIES = {
    "FluidR3_GM": "fluidr3",
    "FluidR3_GS": "fluidr3",
    "FluidR3Mono_GM": "fluidr3",  # the mono, Ogg-compressed FluidR3
    "MuseScore_General": "fluidr3",  # its README: built on FluidR3Mono, kits "inherited from Fluid r3"
    "MuseScore_General_Lite": "fluidr3",
    "MuseScore_General-HQ": "fluidr3",
    "TimGM6mb": "timgm6mb",
    "sf_GMbank": "timgm6mb",  # csound's bank: its kicks are TimGM6mb's, sample for sample (measured)
    "OPL-3_FM_128M": "opl3",
}
"""Soundfont file stem -> family: soundfonts that share samples must share a split.
An unknown soundfont is its own family."""
HELDOUT_FAMILIES = ("timgm6mb", "opl3")
"""Held out: the kits of TimGM6mb (and csound's copy of it: acoustic Standard, Power and
Orchestra kicks, the Electronic and TR 808 kicks) and the OPL-3 FM kit, so the held-out
set has acoustic, sampled electronic and synthesised kicks. FluidR3 (with its MuseScore
descendants), the largest family, is the training set."""

SAMPLE_RATE = 44_100
KICK_NOTES = (35, 36)  # GM Acoustic Bass Drum, Bass Drum 1
NOT_KICK_KITS = re.compile(r"marching|sfx|metronome|cymbal", re.IGNORECASE)
"""Bank-128 presets whose notes 35/36 are snares, tenors, effects or clicks, not kicks."""
DRUM_BANK = 128
DRUM_CHANNEL = 9
TONE_PROGRAMS = range(112)  # GM melodic programs up to the ethnic group; 112+ are percussive/effects
TONES_PER_PROGRAM = 4
KICK_SECONDS = 1.0
TONE_SECONDS = 1.5  # the paper-instruments clip length
TONE_HOLD_S = 1.0
SPACING_S = {"kicks": 2.5, "tones": 3.5}
"""Seconds between note-ons in one render, so the previous note's reverb has died away."""
FADE_S = 0.05
ONSET_DB = -40.0
"""A clip starts where the signal first reaches this level relative to its peak ..."""
PREROLL_S = 0.001
"""... less this much, so the transient's first cycle is kept whole."""
SILENT_PEAK = 1e-4
DUPLICATE_CORRELATION = 0.98
"""Kicks of one family whose first 0.4 s correlate above this are one sample (kits reuse
kicks, and FluidR3Mono/MuseScore are lossy copies of FluidR3)."""
JOB_RENDERS = 64
"""Renders per fluidsynth run: bounds the temporary WAV at ~3 minutes of audio."""
FLUIDSYNTH_SETTINGS = (
    "synth.reverb.room-size=0.6",
    "synth.reverb.damp=0.3",
    "synth.reverb.width=1.0",
    "synth.reverb.level=1.0",
    "synth.chorus.level=1.5",
)


# --------------------------------------------------------------------------- soundfonts


@dataclass(frozen=True)
class Soundfont:
    path: Path
    family: str

    @property
    def slug(self) -> str:
        return slugify(self.path.stem)


@dataclass(frozen=True)
class Preset:
    bank: int
    program: int
    name: str


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def find_soundfonts(dirs: Iterable[Path] = SOUNDFONT_DIRS) -> list[Soundfont]:
    """Every soundfont file once (``default-GM.sf2`` and friends are links to the others).

    Within a family the largest file comes first, so duplicate kicks keep the original
    (FluidR3_GM, stereo) rather than its lossy mono copies.
    """
    seen: dict[Path, Soundfont] = {}
    for folder in dirs:
        for path in sorted(folder.glob("*.sf[23]")):
            real = path.resolve()
            if real.exists() and real not in seen:
                seen[real] = Soundfont(real, FAMILIES.get(real.stem, slugify(real.stem)))
    return sorted(seen.values(), key=lambda s: (s.family, -s.path.stat().st_size, s.path.name))


def read_presets(path: Path) -> list[Preset]:
    """The preset headers (``phdr``) of an sf2/sf3 file.

    Found by searching for the chunk ids rather than walking the RIFF tree: some sf3
    files leave out the pad byte after odd-sized chunks, which breaks a strict walk.
    """
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = data.find(b"phdr", data.rfind(b"pdta"))
        size = struct.unpack("<I", data[start + 4 : start + 8])[0]
        raw = data[start + 8 : start + 8 + size]
    presets = []
    for offset in range(0, size - 38, 38):  # the last record is the terminal "EOP"
        name, program, bank = struct.unpack("<20sHH", raw[offset : offset + 24])
        presets.append(Preset(bank, program, name.split(b"\0")[0].decode("latin-1").strip()))
    return sorted(presets, key=lambda p: (p.bank, p.program))


def missing_tools() -> list[str]:
    problems = []
    if shutil.which("fluidsynth") is None:
        problems.append("fluidsynth is not installed")
    if not find_soundfonts():
        problems.append(f"no soundfonts under {', '.join(map(str, SOUNDFONT_DIRS))}")
    return problems


# --------------------------------------------------------------------------- renders


@dataclass(frozen=True)
class Render:
    """One note to render and the file it becomes; also one row of the manifest."""

    kind: str  # kicks | tones
    split: str  # train | heldout
    family: str
    kit: str  # folder name: <family>-<soundfont>-<preset>
    soundfont: str
    bank: int
    program: int
    preset: str
    note: int
    velocity: int
    variant: int
    bend: float = 0.0  # semitones
    reverb: int = 0  # CC91
    chorus: int = 0  # CC93
    pan: int = 64  # CC10
    cutoff_hz: float = 0.0  # 0: no low-pass
    width: float = 1.0  # side gain
    level_db: float = -0.5  # peak level

    @property
    def path(self) -> str:
        stem = f"{self.note:03d}-v{self.velocity:03d}-{self.variant:03d}"
        if self.kind == "tones":
            stem = f"{self.program:03d}-{slugify(self.preset)}-{stem}"
        return f"{self.kind}/{self.split}/{self.kit}/{stem}.wav"


def vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_file(events: list[tuple[int, bytes]]) -> bytes:
    """A type-0 standard MIDI file from ``(millisecond, message)`` events (stable-sorted)."""
    track = bytearray(b"\x00\xff\x51\x03" + (1_000_000).to_bytes(3, "big"))  # 1 beat = 1 s
    now = 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        track += vlq(tick - now) + message
        now = tick
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000) + b"MTrk" + struct.pack(">I", len(track)) + track


def control(channel: int, number: int, value: int) -> bytes:
    return bytes([0xB0 | channel, number, value])


def note_events(render: Render, channel: int, onset_ms: int, hold_ms: int) -> list[tuple[int, bytes]]:
    """Set up the channel (preset, bend range 12, bend, sends, pan) just before the note."""
    setup = onset_ms - 20
    bend = min(16383, max(0, 8192 + round(render.bend / 12.0 * 8191)))
    messages = [
        control(channel, 0, render.bank if render.bank < 128 else 0),
        bytes([0xC0 | channel, render.program]),
        control(channel, 101, 0),
        control(channel, 100, 0),
        control(channel, 6, 12),
        control(channel, 38, 0),
        bytes([0xE0 | channel, bend & 0x7F, bend >> 7]),
        control(channel, 91, render.reverb),
        control(channel, 93, render.chorus),
        control(channel, 10, render.pan),
        control(channel, 7, 100),
        control(channel, 11, 127),
    ]
    events = [(setup, m) for m in messages]
    events.append((onset_ms, bytes([0x90 | channel, render.note, render.velocity])))
    events.append((onset_ms + hold_ms, bytes([0x80 | channel, render.note, 0])))
    return events


def render_notes(soundfont: Path, renders: list[Render], workdir: Path) -> np.ndarray:
    """Render the notes one after another with fluidsynth; ``(len(renders), 2, window)`` float32.

    Each window starts at its note-on and is ``SPACING_S`` long; all notes go through one
    fluidsynth run, so the soundfont is loaded once per job.
    """
    kind = renders[0].kind
    spacing_ms = round(SPACING_S[kind] * 1000)
    hold_ms = 200 if kind == "kicks" else round(TONE_HOLD_S * 1000)
    channel = DRUM_CHANNEL if kind == "kicks" else 0
    events: list[tuple[int, bytes]] = []
    onsets = [100 + i * spacing_ms for i in range(len(renders))]
    for render, onset in zip(renders, onsets, strict=True):
        events += note_events(render, channel, onset, hold_ms)
    events.append((onsets[-1] + spacing_ms, control(channel, 7, 100)))  # keeps the file long enough
    mid, wav = workdir / "notes.mid", workdir / "notes.wav"
    mid.write_bytes(midi_file(events))
    command = ["fluidsynth", "-n", "-i", "-q", "-F", str(wav), "-r", str(SAMPLE_RATE), "-O", "float"]
    command += ["-g", "0.5"] + [arg for s in FLUIDSYNTH_SETTINGS for arg in ("-o", s)]
    subprocess.run([*command, str(soundfont), str(mid)], check=True, capture_output=True)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE, rate
    window = round(SPACING_S[kind] * SAMPLE_RATE)
    audio = np.pad(audio.T, ((0, 0), (0, window)))
    starts = [round(onset * SAMPLE_RATE / 1000) for onset in onsets]
    return np.stack([audio[:, s : s + window] for s in starts])


def trim_to_onset(windows: np.ndarray, seconds: float) -> np.ndarray:
    """Cut each window ``(B, 2, n)`` to start at its onset and last ``seconds``, faded out.

    The onset is the first sample within ``ONSET_DB`` of the window's peak, less
    ``PREROLL_S``: fluidsynth starts notes on 64-sample block boundaries, and sample
    packs start at the transient.
    """
    length = round(seconds * SAMPLE_RATE)
    level = np.abs(windows).max(axis=1)  # (B, n)
    peak = level.max(axis=1, keepdims=True)
    loud = level >= peak * 10 ** (ONSET_DB / 20)
    onset = np.maximum(loud.argmax(axis=1) - round(PREROLL_S * SAMPLE_RATE), 0)
    padded = np.pad(windows, ((0, 0), (0, 0), (0, length)))
    index = onset[:, None] + np.arange(length)[None, :]
    clips = np.take_along_axis(padded, index[:, None, :].repeat(2, axis=1), axis=2)
    fade = np.ones(length, dtype=np.float32)
    fade_len = round(FADE_S * SAMPLE_RATE)
    fade[-fade_len:] = np.linspace(1.0, 0.0, fade_len, dtype=np.float32)
    return clips * fade


def shape_clips(clips: np.ndarray, renders: list[Render]) -> np.ndarray:
    """Per-clip low-pass, stereo width and peak level: what a sample pack's editor varies."""
    out = np.empty_like(clips)
    for i, render in enumerate(renders):  # a loop per clip is fine here: an offline build script
        x = clips[i].astype(np.float64)
        if render.cutoff_hz > 0:
            sos = scipy.signal.butter(2, render.cutoff_hz, btype="low", fs=SAMPLE_RATE, output="sos")
            x = scipy.signal.sosfilt(sos, x, axis=-1)
        mid, side = (x[0] + x[1]) / 2, (x[0] - x[1]) / 2 * render.width
        x = np.stack([mid + side, mid - side])
        peak = np.abs(x).max()
        out[i] = x * (10 ** (render.level_db / 20) / max(peak, 1e-12))
    return out


# --------------------------------------------------------------------------- plans


def kick_kits(soundfont: Soundfont) -> list[Preset]:
    return [
        p for p in read_presets(soundfont.path) if p.bank == DRUM_BANK and not NOT_KICK_KITS.search(p.name)
    ]


def kit_folder(soundfont: Soundfont, preset: Preset) -> str:
    return f"{soundfont.family}-{soundfont.slug}-{slugify(preset.name)}"


def split_of(family: str) -> str:
    return "heldout" if family in HELDOUT_FAMILIES else "train"


def base_kick(soundfont: Soundfont, preset: Preset, note: int) -> Render:
    return Render(
        kind="kicks",
        split=split_of(soundfont.family),
        family=soundfont.family,
        kit=kit_folder(soundfont, preset),
        soundfont=soundfont.path.name,
        bank=preset.bank,
        program=preset.program,
        preset=preset.name,
        note=note,
        velocity=100,
        variant=0,
    )


def probe_kicks(soundfont: Soundfont) -> list[tuple[Render, np.ndarray]]:
    """Every (kit, kick note) of a soundfont that sounds, with its dry render for dedup."""
    renders = [base_kick(soundfont, kit, note) for kit in kick_kits(soundfont) for note in KICK_NOTES]
    if not renders:
        return []
    with tempfile.TemporaryDirectory(prefix="devset-") as tmp:
        clips = trim_to_onset(render_notes(soundfont.path, renders, Path(tmp)), 0.4)
    sounding = np.abs(clips).max(axis=(1, 2)) >= SILENT_PEAK
    return [(r, c.mean(axis=0)) for r, c, s in zip(renders, clips, sounding, strict=True) if s]


def unique_kicks(probed: list[tuple[Render, np.ndarray]]) -> list[Render]:
    """Drop kicks that repeat an earlier one of the same family (one sample, two kits)."""
    kept: list[Render] = []
    signatures: dict[str, list[np.ndarray]] = {}
    for render, mono in probed:
        z = (mono - mono.mean()) / (mono.std() * math.sqrt(mono.size) + 1e-12)
        family = signatures.setdefault(render.family, [])
        if any(float(z @ other) > DUPLICATE_CORRELATION for other in family):
            continue
        family.append(z)
        kept.append(render)
    return kept


def seeded_rng(seed: int, *key: object) -> np.random.Generator:
    """A generator that depends only on the seed and the key, not on the order of work."""
    return np.random.default_rng([seed, zlib.crc32(repr(key).encode())])


def kick_variant(base: Render, variant: int, seed: int) -> Render:
    """Variant 0 is the dry kick at velocity 100; the others draw what sample packs vary."""
    if variant == 0:
        return base
    rng = seeded_rng(seed, base.kit, base.note, variant)
    return replace(
        base,
        variant=variant,
        velocity=int(rng.integers(45, 128)),
        bend=round(float(rng.uniform(-4.0, 3.0)), 2),
        reverb=int(rng.choice([0, 0, 0, 20, 45, 80, 120])),
        chorus=int(rng.choice([0, 0, 0, 0, 30, 70])),
        pan=int(64 + rng.integers(-12, 13)),
        cutoff_hz=float(round(math.exp(rng.uniform(math.log(1500), math.log(16000))), -1))
        if rng.random() < 0.4
        else 0.0,
        width=round(float(rng.uniform(0.4, 1.6)), 2),
        level_db=round(float(rng.uniform(-6.0, -0.3)), 2),
    )


def tone_renders(soundfont: Soundfont, seed: int) -> list[Render]:
    """``TONES_PER_PROGRAM`` notes of every GM melodic program the soundfont has in bank 0."""
    programs = {
        p.program: p for p in read_presets(soundfont.path) if p.bank == 0 and p.program in TONE_PROGRAMS
    }
    renders = []
    folder = f"{soundfont.family}-{soundfont.slug}"
    for program, preset in sorted(programs.items()):
        low, high = (28, 55) if 32 <= program <= 39 else (45, 84)  # basses sit lower
        rng = seeded_rng(seed, folder, program)
        notes = sorted(int(n) for n in rng.choice(np.arange(low, high + 1), TONES_PER_PROGRAM, replace=False))
        for variant, note in enumerate(notes):
            renders.append(
                Render(
                    kind="tones",
                    split=split_of(soundfont.family),
                    family=soundfont.family,
                    kit=folder,
                    soundfont=soundfont.path.name,
                    bank=0,
                    program=program,
                    preset=preset.name,
                    note=note,
                    velocity=int(rng.integers(70, 121)),
                    variant=variant,
                    reverb=int(rng.choice([0, 20, 50])),
                    pan=int(64 + rng.integers(-10, 11)),
                    level_db=round(float(rng.uniform(-6.0, -0.5)), 2),
                )
            )
    return renders


# --------------------------------------------------------------------------- rendering jobs


@dataclass(frozen=True)
class Job:
    soundfont: Path
    renders: tuple[Render, ...]
    out: Path


def run_job(job: Job) -> int:
    """Render, trim, shape and write one job's clips; returns how many came out silent."""
    renders = list(job.renders)
    seconds = KICK_SECONDS if renders[0].kind == "kicks" else TONE_SECONDS
    with tempfile.TemporaryDirectory(prefix="devset-") as tmp:
        clips = trim_to_onset(render_notes(job.soundfont, renders, Path(tmp)), seconds)
    clips = shape_clips(clips, renders)
    silent = 0
    for render, clip in zip(renders, clips, strict=True):
        if np.abs(clip).max() < SILENT_PEAK or not np.isfinite(clip).all():
            silent += 1
            continue
        write_audio(job.out / render.path, clip, SAMPLE_RATE, subtype="PCM_16")
    return silent


def jobs_for(renders: list[Render], soundfonts: dict[str, Path], out: Path) -> Iterator[Job]:
    """Group the renders that are not on disk yet by soundfont, in chunks (each note
    selects its own preset, so one fluidsynth run serves many kits)."""
    todo: dict[str, list[Render]] = {}
    for render in renders:
        if not (out / render.path).exists():
            todo.setdefault(render.soundfont, []).append(render)
    for name, group in todo.items():
        for start in range(0, len(group), JOB_RENDERS):
            yield Job(soundfonts[name], tuple(group[start : start + JOB_RENDERS]), out)


def link_subset(out: Path, train: list[Render], name: str, size: int) -> list[Render]:
    """Hard-link the first ``size`` clips in (variant, kit, note) order: all kits, few variants."""
    existing = [r for r in train if (out / r.path).exists()]
    chosen = sorted(existing, key=lambda r: (r.variant, r.kit, r.note))[:size]
    for render in chosen:
        target = out / render.path.replace("/train/", f"/{name}/", 1)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(out / render.path, target)
            except OSError:
                shutil.copy2(out / render.path, target)
    return chosen


def print_summary(rows: list[dict], wall_s: float, silent: int) -> None:
    per_kit = Counter((r["kind"], r["split"], r["kit"]) for r in rows)
    print(f"\n{'kind':6} {'split':8} {'kit':48} {'files':>6}")
    for (kind, split, kit), count in sorted(per_kit.items()):
        print(f"{kind:6} {split:8} {kit:48} {count:6d}")
    totals = Counter((r["kind"], r["split"]) for r in rows)
    subsets = Counter((r["kind"], s) for r in rows for s in r["subsets"])
    print()
    for (kind, split), count in sorted(totals.items()):
        kits = len({k for (kd, sp, k) in per_kit if kd == kind and sp == split})
        print(f"{kind}/{split}: {count} files in {kits} kits")
    for (kind, subset), count in sorted(subsets.items()):
        print(f"{kind}/{subset}: {count} files")
    print(f"silent renders dropped: {silent}; wall time {wall_s:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("/work/devset"), help="output folder")
    parser.add_argument(
        "--variants", type=int, default=72, help="variants per distinct kick (incl. the dry one)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every variant parameter")
    parser.add_argument("--jobs", type=int, default=2, help="parallel fluidsynth processes")
    parser.add_argument("--subsets", default="300,3000", help="sizes of the kick training subsets")
    parser.add_argument("--no-tones", action="store_true", help="kicks only")
    args = parser.parse_args()

    problems = missing_tools()
    if problems:
        print("; ".join(problems) + ". Install them with:", file=sys.stderr)
        print(f"  sudo apt-get install {' '.join(APT_PACKAGES)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    soundfonts = find_soundfonts()
    by_name = {s.path.name: s.path for s in soundfonts}
    print("soundfonts: " + ", ".join(f"{s.path.name} ({s.family})" for s in soundfonts))

    with Pool(args.jobs) as pool:
        probed = [pair for found in pool.map(probe_kicks, soundfonts) for pair in found]
        kicks = unique_kicks(probed)
        elapsed = time.perf_counter() - start
        print(f"kick notes that sound: {len(probed)}; distinct: {len(kicks)} ({elapsed:.1f} s)", flush=True)
        renders = [kick_variant(base, v, args.seed) for base in kicks for v in range(args.variants)]
        if not args.no_tones:
            renders += [r for s in soundfonts for r in tone_renders(s, args.seed)]
        jobs = list(jobs_for(renders, by_name, args.out))
        silent = 0
        for done, dropped in enumerate(pool.imap_unordered(run_job, jobs), 1):
            silent += dropped
            if done % 10 == 0 or done == len(jobs):
                print(f"  rendered {done}/{len(jobs)} jobs ({time.perf_counter() - start:.0f} s)", flush=True)

    train = [r for r in renders if r.kind == "kicks" and r.split == "train"]
    subsets: dict[str, set[str]] = {}
    for size in (int(s) for s in args.subsets.split(",") if s):
        name = f"train-{size}"
        subsets[name] = {r.path for r in link_subset(args.out, train, name, size)}
    rows = []
    for render in renders:
        if (args.out / render.path).exists():
            row = asdict(render) | {"path": render.path}
            row["subsets"] = sorted(name for name, paths in subsets.items() if render.path in paths)
            rows.append(row)
    manifest = {
        "seed": args.seed,
        "variants": args.variants,
        "heldout_families": HELDOUT_FAMILIES,
        "files": rows,
    }
    tmp = args.out / f".manifest.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, args.out / "manifest.json")  # a reader never sees half a manifest
    print_summary(rows, time.perf_counter() - start, silent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
