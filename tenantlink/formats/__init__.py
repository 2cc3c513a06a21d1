"""Date and time formats of the portal's languages where Django's own do not suit its readers
(settings.FORMAT_MODULE_PATH); Django's fill in whatever these leave out."""
