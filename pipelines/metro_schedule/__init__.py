"""metro_schedule: the schedule pipeline of the original deployment.

A continuous-gtfs pipeline folder. ``scan_pipeline`` imports every module here
whose name does not start with an underscore and collects the module-level
steps; the chain is

    init → update_feed_info → merge_stops → remove_unused_stops → validate_stop_hierarchy

The constants below are the pipeline's settings. Steps import them from this
package, so changing a value here is the one place a behaviour changes (and,
being a code change, it goes through review like any other).
"""

# Which continuous-gtfs runner executes this folder: schedule pipelines mutate a
# dict of polars DataFrames (one per GTFS file) and are packaged back as a zip.
FEED_TYPE = "schedule"

# Named inputs and how each is parsed. "schedule" arrives as a GTFS zip and is
# parsed into {filename: DataFrame}; the init step seeds ctx.output from it.
INPUTS = {"schedule": "gtfs_schedule_zip"}

# Written into feed_info.txt by update_feed_info. Riders' apps show the
# publisher, so it must name who answers for the feed, not the upstream vendor.
PUBLISHER_NAME = "Metro Transit Data"

# Where a consumer of the feed reports problems; shown next to the publisher name.
PUBLISHER_URL = "https://transit.example.org/data"

# The feed's default language (BCP 47): the language of stop and route names.
FEED_LANG = "en"

# Two stops are the "same place listed twice" only within this many metres
# (haversine, centre to centre). Wide enough for the jitter between two
# hand-entered copies of one stop, narrow enough that neighbouring stops along a
# street (typically 200 m or more apart) never qualify. Stops on opposite sides
# of a street may be closer than this; merge_stops keeps those apart by usage,
# not by distance (see its docstring).
MERGE_DISTANCE_M = 25.0
