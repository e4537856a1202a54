"""`replctl init`: start an estate in a team's own repository.

`estate` renders the commented estate files from a few answers (pure: text in, text out);
`write` puts them on disk, and with `--eject` copies the bundled template and functions beside
them for teams that customise those. Without `--eject` the estate uses what is bundled with the
installed replctl, so upgrading the tool upgrades what is deployed (`replctl --version` and
`replctl plan` show it).
"""
