"""One module per command group; each parses options, calls the library once, and renders."""
