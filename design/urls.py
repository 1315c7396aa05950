from django.urls import path

from . import views

app_name = "design"
urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("new/", views.campaign_create, name="campaign_create"),
    path("<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path("<int:pk>/generate/", views.campaign_generate, name="campaign_generate"),
    path("<int:pk>/close/", views.campaign_close, name="campaign_close"),
    path("<int:pk>/status.json", views.campaign_status, name="campaign_status"),
    path("<int:pk>/map.svg", views.campaign_map, name="campaign_map"),
    path("<int:pk>/parity.svg", views.campaign_parity, name="campaign_parity"),
    path("rounds/<int:pk>/<str:action>/", views.round_action, name="round_action"),
    path("candidates/<int:pk>/", views.candidate_detail, name="candidate_detail"),
    path("candidates/<int:pk>/sample/", views.candidate_sample, name="candidate_sample"),
    path("candidates/<int:pk>/recipe/", views.candidate_recipe, name="candidate_recipe"),
    path("candidates/<int:pk>/approve/", views.candidate_approve, name="candidate_approve"),
    path("candidates/<int:pk>/reject/", views.candidate_reject, name="candidate_reject"),
    path("candidates/<int:pk>/start/", views.candidate_start, name="candidate_start"),
]
