"""``python -m outboxctl``."""

from __future__ import annotations

from outboxctl.main import main

if __name__ == "__main__":
    main()
