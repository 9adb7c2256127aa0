"""Step 1: stamp the publisher's identity into feed_info.txt."""

from continuous_gtfs.builtins.schedule import UpdateFeedInfo

from . import FEED_LANG, PUBLISHER_NAME, PUBLISHER_URL

# The builtin only overwrites columns feed_info.txt already has and does nothing
# when the file is absent: it edits the feed's metadata, it never invents it.
# No `after=`: the init step's before="*" already orders it first, and an explicit
# edge would only duplicate that one in the DAG.
update_feed_info = UpdateFeedInfo(
    publisher_name=PUBLISHER_NAME,
    publisher_url=PUBLISHER_URL,
    feed_lang=FEED_LANG,
)
