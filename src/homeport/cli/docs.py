"""Generate docs/cli.md from the click commands, so the reference cannot drift."""

from __future__ import annotations

import click


def cli_reference(group: click.Group) -> str:
    lines = [
        "# Command-line reference",
        "",
        "Generated from the code by `homeport config cli-reference`; a test keeps it current.",
        "Exit codes: 0 success, 1 problems found (e.g. `check`), 2 bad usage or configuration,",
        "3 not found, 4 already exists, 5 storage error.",
        "",
    ]

    def walk(cmd: click.Command, path: list[str]) -> None:
        ctx = click.Context(cmd, info_name=" ".join(path), help_option_names=["-h", "--help"])
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])
            return
        lines.append(f"## `{' '.join(path)}`")
        lines.append("")
        lines.append((cmd.help or "").strip())
        lines.append("")
        lines.append("```")
        lines.append(cmd.get_usage(ctx))
        # cmd.params, not get_params(): click caches the help option per command, so
        # it would depend on which context first asked (tests run commands standalone).
        for param in cmd.params:
            if isinstance(param, click.Argument):
                continue  # in the usage line; newer click also gives them a help record
            record = param.get_help_record(ctx)
            if record:
                lines.append(f"  {record[0]:<28} {record[1]}")
        lines.append(f"  {'-h, --help':<28} Show this message and exit.")
        lines.append("```")
        lines.append("")

    walk(group, ["homeport"])
    return "\n".join(lines)
