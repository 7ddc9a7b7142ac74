// The Klaviyo consent popup closes itself once connected; the admin page notices by polling its settings.
setTimeout(function () { window.close(); }, 1500);
