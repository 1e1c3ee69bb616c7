"""The core names no image size: the transform declares it (issue 13).

A grep over ``ssgan_core``'s code (docstrings and comments stripped, so prose may give
the paper's shape as an example) for the old constants, the literal 256 and the stereo
channel count used as an image's. Each allowed line is listed with its reason.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "ssgan_core"

ALLOWED_256 = {
    "PAPER_IMAGE_SHAPE = ImageShape(2, 256, 256)": "the documented default for old callers and files",
    "def colormap(values: np.ndarray, size: int = 256) -> np.ndarray:": "colour table entries",
    'preview_count: int = Field(16, ge=1, le=256, description="Fixed-latent previews per period.")': (
        "a count"
    ),
}
NOT_A_SIZE = "not an image size"
"""A comment that marks a line whose 256 is something else (a count, a chunk)."""
FORBIDDEN_NAMES = {"IMAGE_SIZE", "CHANNELS"}
TWO_CHANNEL_PATTERNS = (
    re.compile(r"shape\s*\[\s*1\s*\]\s*(?:!=|==)\s*2\b"),  # an image checked for two channels
    re.compile(
        r"\b(?:empty|zeros|ones|randn?|full|reshape|view|expand)\s*\([^()]*,\s*2\s*,\s*\w"
    ),  # (B, 2, ..)
    re.compile(r"\(\s*2\s*,\s*(?:256|IMAGE_SIZE)"),
)


SKIPPED = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}
FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings into tokens
FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def code_lines(path: Path) -> dict[int, str]:
    """Each line's code with strings and comments removed (``""`` stands for a string)."""
    lines: dict[int, list[str]] = {}
    inside_fstring = 0
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == FSTRING_START:
            inside_fstring += 1
        elif tok.type == FSTRING_END:
            inside_fstring -= 1
            lines.setdefault(tok.start[0], []).append('""')
        elif tok.type not in SKIPPED and not inside_fstring:
            text = '""' if tok.type == tokenize.STRING else tok.string
            lines.setdefault(tok.start[0], []).append(text)
    return {n: " ".join(parts) for n, parts in lines.items()}


def offending(path: Path) -> list[str]:
    source = path.read_text().splitlines()
    found = []
    for number, code in code_lines(path).items():
        raw = source[number - 1].strip()
        if raw in ALLOWED_256 or NOT_A_SIZE in raw:
            continue
        tokens = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*|\d+", code))
        if tokens & FORBIDDEN_NAMES or "256" in tokens or any(p.search(code) for p in TWO_CHANNEL_PATTERNS):
            found.append(f"{path.name}:{number}: {raw}")
    return found


def test_core_has_no_image_size_or_channel_constants() -> None:
    problems = [line for path in sorted(CORE.glob("*.py")) for line in offending(path)]
    assert problems == [], "the image shape must come from the transform:\n" + "\n".join(problems)


def test_the_grep_catches_what_it_should(tmp_path: Path) -> None:
    """The checker itself: each old form is found, prose and allowed lines are not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Images are (2, 256, 256) in the paper."""  # prose is fine\n'
        "from ssgan_core.interfaces import IMAGE_SIZE\n"
        "x = torch.zeros(4, 2, 64, 64)\n"
        "if image.shape[1] != 2:\n"
        "    pass\n"
        "frames = 256\n"
        "PAPER_IMAGE_SHAPE = ImageShape(2, 256, 256)\n"
        "for chunk in rows.split(256):  # not an image size\n"
    )
    assert [line.split(":")[1] for line in offending(bad)] == ["2", "3", "4", "6"]
