"""The change feed: every custody event, manifest change and alert, each batch's events in
their order."""
