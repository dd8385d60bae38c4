"""The old name of the command line: ``python -m fairseq_vanilla.pipeline COMMAND …`` is
``python -m fairseq_vanilla COMMAND …`` (see :mod:`fairseq_vanilla.__main__`)."""

from .__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
