"""The bundled models folder, installed as the package `routeiq.models` (package data).

This file only makes the folder importable, so `importlib.resources` finds it in a wheel and in
an editable install alike; it is not a model file and the bundle manifest does not list it.
"""
