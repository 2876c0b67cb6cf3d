"""The text layer: the analysis's models in words, for the terminal and for JSON. Beside
report/ (the page) and export/ (the files), and like them it only reads models: every
renderer takes one (`TextRenderer.lines(model)` / `.render(model)`), and every sentence the
evidence needs is written once, in evidence.py. No command imports another command's text.
"""
