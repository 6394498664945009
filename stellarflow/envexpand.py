"""
``${VAR}`` and ``${VAR:-default}`` expansion in config strings, so secrets stay out of files.

``$${`` escapes a literal ``${``.  A variable that is unset (and has no default) is a config
error naming the path where it is used.
"""

import re

_PATTERN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")


def expand(value, environ, path, problems):
    """
    Expand every string inside C{value} (recursively through lists and mappings).

    @return: the expanded value; problems are recorded in C{problems}.
    """
    if isinstance(value, str):
        return _expandString(value, environ, path, problems)
    if isinstance(value, list):
        return [expand(v, environ, "{}[{}]".format(path, i), problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {
            k: expand(v, environ, "{}.{}".format(path, k) if path else str(k), problems)
            for k, v in value.items()
        }
    return value


def _expandString(text, environ, path, problems):
    if "$" not in text:
        return text

    def replace(match):
        whole = match.group(0)
        if whole == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            problems.add(
                path,
                "malformed variable reference {!r}; expected ${{NAME}} or ${{NAME:-default}}".format(whole),
            )
            return whole
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        if name in environ:
            return ""
        problems.add(
            path, "environment variable {} is not set; set it or write ${{{}:-default}}".format(name, name)
        )
        return whole

    return _PATTERN.sub(replace, text)
