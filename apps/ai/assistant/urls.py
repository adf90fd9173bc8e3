"""The assistant's paths, spliced into the ``ai`` namespace by apps/ai/urls.py."""

from django.urls import path

from apps.ai.assistant import views

urlpatterns: list = [
    path("assistant/", views.assistant, name="assistant"),
    path("assistant/ask/", views.assistant_ask, name="assistant_ask"),
    path("assistant/<int:pk>/", views.conversation, name="conversation"),
    path("assistant/<int:pk>/ask/", views.conversation_ask, name="conversation_ask"),
    path("assistant/<int:pk>/rename/", views.conversation_rename, name="conversation_rename"),
    path("assistant/<int:pk>/delete/", views.conversation_delete, name="conversation_delete"),
    path("assistant/answers/<int:pk>/", views.message_part, name="message_part"),
    path("assistant/answers/<int:pk>/stream/", views.message_stream, name="message_stream"),
]
