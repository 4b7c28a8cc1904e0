"""DreamClear Studio's Qt front end. Never imports torch or engine internals."""
