"""Trainings started for a viewer: their processes, uploaded corpora and limits."""
