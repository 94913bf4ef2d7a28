#!/usr/bin/env python
"""The README's marked shell blocks, as scripts/readme-path.sh runs them.

    readme_blocks.py README NAME

prints the body of the ```sh block that follows the line
``<!-- readme-path: NAME -->`` in README (the marker is invisible on GitHub
and in Galaxy's rendering). The suite runs these lines as they stand, so an
edit of the README changes what the suite runs. Exits non-zero, naming the
marker, when it is missing, repeated or not followed by a ```sh block.
"""

import re
import sys

MARKER = re.compile(r'^<!-- readme-path: ([a-z-]+) -->\s*$')


def blocks(text):
    """{name: body} of every marked block; ValueError naming what is wrong."""
    lines = text.splitlines()
    out = {}
    for i, line in enumerate(lines):
        match = MARKER.match(line)
        if not match:
            continue
        name = match.group(1)
        if name in out:
            raise ValueError(f'README: marker readme-path: {name} appears twice')
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or lines[j].strip() != '```sh':
            raise ValueError(f'README line {i + 1}: marker readme-path: {name} is not followed by a ```sh block')
        end = j + 1
        while end < len(lines) and lines[end].strip() != '```':
            end += 1
        if end >= len(lines):
            raise ValueError(f'README line {j + 1}: the readme-path: {name} block is not closed')
        out[name] = '\n'.join(lines[j + 1:end]) + '\n'
    return out


def block(text, name):
    """The body of the block marked NAME; ValueError when there is none."""
    found = blocks(text)
    if name not in found:
        raise ValueError(f'README: no block marked <!-- readme-path: {name} --> (found: {sorted(found) or "none"})')
    return found[name]


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding='utf-8') as f:
            sys.stdout.write(block(f.read(), argv[2]))
    except ValueError as err:
        print(f'readme-path: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
