"""Deploy logic the GitHub workflows call, kept in tested Python instead of workflow shell.

``python -m envctl.ci COMMAND`` (see ``envctl/ci/__main__.py``); one module per concern:

    changed    which environments a push or pull request changes, in promotion order
    gate       may this environment be deployed now (freeze: a known good release, or an override)
    smoke      smoke check of a deployed console: /readyz, /api/dag, /api/status
    plan       summary of a ``tofu show -json`` plan; reviewed-plan equality before apply
    comment    the PR comment body: ``envctl diff`` plus the plan summary
    github     the few GitHub REST calls the workflows need (comments, issues, runs)
    drift      drift issues from ``tofu plan -detailed-exitcode``; pending deploys kept apart
    rollout    gradual rollout: per-step stack variables and the step runner
    images     push images once per tag and read back digests; copy them between registries

Everything reads environments through ``envctl.load`` so "valid" means the same here as
in ``envctl validate``.
"""
