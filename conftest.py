"""Test-session set-up: the offline environment, before any test imports gradio/ultralytics/hub."""

from foley_core import offline

offline.configure()
