"""Replace an attribute of fairseq and keep the original on its owner, so that every copy of a repair sees upstream.

Not a repair. The original is stored once, as ``owner.fairseq_vanilla_original_<name>``: installing twice, or from
two copies of a module (the package's and one a launcher unpickled), never wraps a wrapper or loses upstream's code.
"""

PREFIX = "fairseq_vanilla_original_"


def upstream(owner, name: str):
    """fairseq's own ``owner.name``, whether or not a repair replaced it."""
    return vars(owner).get(PREFIX + name, getattr(owner, name))


def replace(owner, name: str, new) -> None:
    """``owner.name = new``, keeping fairseq's original (idempotent)."""
    if PREFIX + name not in vars(owner):
        setattr(owner, PREFIX + name, getattr(owner, name))
    setattr(owner, name, new)
