"""Init step: seed ctx.output from the "schedule" input.

run_schedule_pipeline starts every run with an empty ctx.output on purpose (it
will not guess which input to copy), so a schedule pipeline needs this step.
The builtin declares ``before="*"``: it runs ahead of every other step without
the others naming it.
"""

from continuous_gtfs.builtins.schedule import InitScheduleOutput

init = InitScheduleOutput("schedule")
