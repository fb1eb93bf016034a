"""Errors of the safe loaders."""
import pickle


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs full unpickling, which could run code."""
