// The chat page's entry module.
document.getElementById("app").textContent = "Chorus";
