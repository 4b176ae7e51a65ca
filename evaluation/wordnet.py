"""WordNet for METEOR, offline: Debian's WordNet 3.0 (packages wordnet-base and wordnet-sense-index) made
into an nltk data folder.

nltk's WordNet reader wants `corpora/wordnet/` with the database files and a `lexnames` file. Debian ships
the database in /usr/share/wordnet but not `lexnames`, whose table is in the lexnames(5WN) manual page of the
same package; the files are copied (nltk refuses paths that leave its data root, so symlinks do not work).

    python -m evaluation.wordnet            # install into <cache>/nltk_data (run by scripts/setup.sh)
"""
from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)
DEBIAN_WORDNET = Path("/usr/share/wordnet")
DEBIAN_LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
DATABASE_FILES = ("data.noun", "data.verb", "data.adj", "data.adv", "index.noun", "index.verb", "index.adj",
                  "index.adv", "index.sense", "noun.exc", "verb.exc", "adj.exc", "adv.exc")
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}  # lexnames' syntactic category field


def nltk_data_dir() -> Path:
    """Where the project keeps nltk data: <STUDYLLAMA_CACHE or ~/.cache/studyllama>/nltk_data."""
    root = os.environ.get("STUDYLLAMA_CACHE") or str(Path.home() / ".cache" / "studyllama")
    return Path(root) / "nltk_data"


def lexnames_from_manual(man_page: Path = DEBIAN_LEXNAMES_MAN) -> str:
    """The `lexnames` file (number, name, category; tab separated) from the lexnames(5WN) manual page."""
    text = gzip.decompress(man_page.read_bytes()).decode("utf-8", "replace")
    rows = []
    for line in text.splitlines():
        m = re.match(r"^(\d\d)\t\s*([a-z]+)\.(\w+)\s*\t", line)
        if m and m.group(2) in CATEGORY:
            rows.append(f"{m.group(1)}\t{m.group(2)}.{m.group(3)}\t{CATEGORY[m.group(2)]}")
    if len(rows) != 45:  # WordNet 3.0 has 45 lexicographer files
        raise ValueError(f"{man_page}: expected 45 lexicographer files, found {len(rows)}")
    return "\n".join(rows) + "\n"


def install(src: Path = DEBIAN_WORDNET, dest: Path | None = None, man_page: Path = DEBIAN_LEXNAMES_MAN) -> Path:
    """Copy the WordNet database into <dest>/corpora/wordnet with a lexnames file; returns that folder."""
    dest = dest or nltk_data_dir()
    missing = [f for f in DATABASE_FILES if not (src / f).exists()]
    if missing or not man_page.exists():
        raise FileNotFoundError(
            f"WordNet 3.0 is not complete in {src} (missing {missing or [str(man_page)]}); install Debian's "
            "wordnet-base and wordnet-sense-index (apt-get install wordnet-base wordnet-sense-index)")
    target = dest / "corpora" / "wordnet"
    tmp = target.with_name("wordnet.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in DATABASE_FILES:
        shutil.copyfile(src / f, tmp / f)
    (tmp / "lexnames").write_text(lexnames_from_manual(man_page))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # readers never see a half-copied folder
    return target


def ensure_on_path() -> bool:
    """Add the project's nltk data folder to nltk's search path; True when WordNet is there."""
    import nltk

    folder = str(nltk_data_dir())
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)
    return (nltk_data_dir() / "corpora" / "wordnet" / "lexnames").exists()


def main() -> int:
    try:
        target = install()
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"note: WordNet not installed for METEOR ({exc}); METEOR will match exact words and stems only",
              file=sys.stderr)
        return 0  # METEOR still runs, and every report says it ran without synonyms
    print(f"WordNet 3.0 for METEOR installed in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
