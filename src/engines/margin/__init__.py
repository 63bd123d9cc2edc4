"""The margin engine: CCP and bilateral (SIMM) initial margin, variation margin, stressed and
procyclical margin, CCP model changes, the margin-call avalanche simulation, liquidity tools and
reverse stress testing, for a multi-manager book across hundreds of venues.

The book is described by pydantic models (`book`, `venues`) at the boundary and worked on as numpy
arrays (`arrays.MarginBook`, `arrays.FactorHistory`) inside. Nothing of the platform is imported.
"""
