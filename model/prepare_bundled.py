"""`python -m model.prepare_bundled`: convert the bundled SmolLM2 GGUF into the cached HF checkpoint."""
from __future__ import annotations

import logging
import sys


def main() -> int:
    from model.resolve import ModelNotFoundError, resolve_model

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        resolved = resolve_model("bundled")
    except ModelNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"bundled model ready at {resolved.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
