"""`dreamclear models` (placeholder until the pipeline lands)."""


def register(subparsers):
    parser = subparsers.add_parser("models", help="models images")
    parser.set_defaults(func=lambda args: 2)
