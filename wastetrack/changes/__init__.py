"""The change feed: every custody event, manifest change and alert, in commit order."""
