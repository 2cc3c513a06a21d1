"""Operating the portal: commands that look after every app's data at once, such as the daily
purge, and the container's health check. It may import every app; no app imports it."""
