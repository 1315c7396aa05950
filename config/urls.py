from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.static import serve

from core.views import home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("lab/", include("lab.urls")),
    path("mining/", include("mining.urls")),
    path("design/", include("design.urls")),
    path("ml/", include("training.urls")),
    path("api/", include("core.api_urls")),
    # Uploaded files are only ever served to logged-in users through views;
    # this plain route is for a person's first run (DEBUG) only.
]
if settings.DEBUG:
    urlpatterns += [path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})]

# 403 and 404 pages in the site's layout (templates/403.html, templates/404.html).
handler403 = "core.views.permission_denied"
