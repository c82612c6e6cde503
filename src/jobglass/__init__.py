"""jobglass."""
