"""Operating the portal: commands that look after every app's data at once, such as the daily
purge. It may import every app; no app imports it."""
