"""A local package: proof that a notebook step's requirements were installed."""


def greet(name, count):
    return " ".join(["hello " + name] * count)
