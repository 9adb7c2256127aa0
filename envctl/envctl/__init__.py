"""envctl: validate, render, promote and roll back the environment files.

One module per job:

- ``load``: read, check (schema + policy) and return an ``model.Environment``
- ``schema``, ``policy``: the rules, each error naming file, field and line
- ``platform_env``: every variable the platform sets in a service, both platforms
- ``render``: the root stack's variables; ``local``: the docker platform's settings
- ``diff``: a change in words
- ``records``: deploy records (tags ``deploy/ENV/<UTC>``): read, parse, write;
  ``record``: the ``envctl record`` command
- ``history``: releases along main's first parent, joined with the records (the ledger)
- ``release``: set-image, promote, rollback (round-trip YAML, one commit each), decided
  from the ledger; ``freeze``: windows and overrides; ``upstream``: the record rule of
  ``envctl validate``; ``clock``: ``$ENVCTL_NOW``
- ``docs``: module README tables; ``hcl``, ``tftypes``: reading OpenTofu interfaces
- ``cli``: the ``envctl`` command
"""
