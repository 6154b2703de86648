"""A run as a file (movie, CSV, HTML page), made from what it stored."""
