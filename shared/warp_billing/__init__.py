"""WARP Billing: rating, charging and billing for wholesale telecom traffic."""

__version__ = "0.1.0"


def _refuse_stale_compiled_modules(folders: tuple[str, ...] | None = None) -> None:
    """A mypyc-compiled module older than its source would silently run old code: refuse it."""
    import os

    here = os.path.dirname(__file__)
    for folder in folders or (here, os.path.join(here, "rating")):
        for name in os.listdir(folder):
            if not name.endswith(".so"):
                continue
            compiled = os.path.join(folder, name)
            source = os.path.join(folder, name.split(".", 1)[0] + ".py")
            if os.path.exists(source) and os.path.getmtime(source) > os.path.getmtime(compiled):
                raise ImportError(
                    f"{compiled} is older than {source}: rebuild it with `make venv` "
                    "(or delete the .so files to run pure Python)"
                )


_refuse_stale_compiled_modules()
