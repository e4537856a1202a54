"""`replctl package`: build the function ZIPs (or take them from the cache) and list them."""

from __future__ import annotations

from pathlib import Path

import typer

from replctl.commands import Command, command_app, state

app = command_app()


@app.command("package", cls=Command)
def package_cmd(
    ctx: typer.Context,
    build_dir: Path = typer.Option(None, "--build-dir", help="Cache folder (default .replctl/build)."),
) -> None:
    """Build the three function ZIPs: deterministic bytes, named by content hash, cached."""
    from rich.table import Table

    from replctl.package import build_all

    st = state(ctx)
    root = Path.cwd()
    if st.config_path is not None:
        root = st.config_path.resolve().parent
    artifacts = build_all(root, cache_dir=build_dir, log=st.output.info)
    if st.output.json:
        st.output.emit_json([
            {"function": a.function, "path": str(a.path), "sha256": a.sha256, "key": a.key, "size": a.size}
            for a in artifacts
        ])
        return
    table = Table(title="function artifacts")
    for col in ("function", "key", "size", "path"):
        table.add_column(col)
    for a in artifacts:
        table.add_row(a.function, a.key, f"{a.size:,}", _relative(a.path))
    st.output.table(table)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
