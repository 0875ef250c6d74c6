"""How sbatch reads the #SBATCH lines of a script, written again here to check the rendered ones.

Follows Slurm's src/sbatch/opt.c (_opt_batch_script and _get_argument): lines are split at '\\n' only;
the first line that is neither blank nor a comment ends the header, and every #SBATCH line after it is
ignored; within a line, whitespace separates arguments, single or double quotes group, a backslash
escapes the next character even inside quotes, and an unquoted '#' starts a comment.
"""

from __future__ import annotations


def header_lines(script: str) -> list[str]:
    """The #SBATCH lines sbatch reads: those before the first command."""
    found = []
    for line in script.split("\n"):
        if line.startswith("#SBATCH"):
            found.append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            break
    return found


def arguments(line: str) -> list[str]:
    """The arguments sbatch takes from one #SBATCH line."""
    text = line[len("#SBATCH") :]
    args: list[str] = []
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            break
        arg, quote, escaped = [], "", False
        while i < len(text) and (quote or not text[i].isspace()):
            c = text[i]
            i += 1
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
                continue
            elif quote:
                if c == quote:
                    quote = ""
                    continue
            elif c in "'\"":
                quote = c
                continue
            elif c == "#":
                i = len(text)
                break
            arg.append(c)
        if quote:
            raise ValueError(f"sbatch: unmatched {quote} in {line!r}")
        if arg:
            args.append("".join(arg))
    return args


def options(script: str) -> dict[str, str]:
    """`--name=value` (or `--name`, as '') for every argument sbatch reads from the script's header."""
    out: dict[str, str] = {}
    for line in header_lines(script):
        for arg in arguments(line):
            name, _, value = arg.partition("=")
            out[name] = value
    return out
