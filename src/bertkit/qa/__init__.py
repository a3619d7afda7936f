"""Extractive question answering (SQuAD v1.1/v2.0): span objective, decoding, official metrics, the
:class:`~bertkit.qa.estimator.QuestionAnswerer` facade. Nothing is imported here so that importing the
package stays light."""
