"""envctl: validate, render, promote and roll back the environment files.

One module per job:

- ``load``: read, check (schema + policy) and return an ``model.Environment``
- ``schema``, ``policy``: the rules, each error naming file, field and line
- ``platform_env``: every variable the platform sets in a service, both platforms
- ``render``: the root stack's variables; ``local``: the docker platform's settings
- ``diff``: a change in words; ``history``: releases from git log
- ``release``: set-image, promote, rollback (round-trip YAML, one commit each)
- ``docs``: module README tables; ``hcl``, ``tftypes``: reading OpenTofu interfaces
- ``cli``: the ``envctl`` command
"""
