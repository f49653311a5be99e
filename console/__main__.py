"""``python -m console``: the same commands as ``anxin console`` (until the CLI mounts them)."""

from console.cli import console_app

if __name__ == "__main__":
    console_app(prog_name="anxin console")
