"""Authentication and IAM: who a caller is (credentials), and what they may do (policies).

Imported by the API layer and the server; it imports only the model, the store's data and
third-party libraries (PyJWT, cryptography, cel-python).
"""
