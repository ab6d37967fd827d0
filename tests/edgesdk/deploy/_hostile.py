"""Arguments and file names that break naive shell quoting."""

HOSTILE = [
    "with space",
    "semi;colon && echo injected",
    "$(echo injected)",
    "`echo injected`",
    "single'quote",
    'double"quote',
    "new\nline",
    "ünïcødé 名前 ✓",
    "-n",
    "*glob?[a]",
    "back\\slash\\n",
    "",
    "tab\tand\rcr",
    "~tilde",
    "$HOME ${HOME}",
    "a'b\"c$(d)`e`;f|g&h>i<j",
]
