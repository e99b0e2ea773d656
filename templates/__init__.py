"""Jinja2 templates of generated text (C headers and examples, report pages); a package so that
they load through importlib.resources from a wheel as from a checkout."""
