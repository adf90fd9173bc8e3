"""Reports of inspection: a run's report (``build``: one builder for the console page and the PDF), its PDF
(``pdf``), the emails (``mail``) and the managers' weekly report (``weekly``)."""
